/*  protocol/keys.h - CURVE keys on disk, roles, and the live key registry.

    Keys are czmq certificates (zcert, ZPL text): a key pair saved at PATH
    is two files, PATH (the public half, mode 0644) and PATH_secret (both
    halves, mode 0600: readable by its owner only). A secret file that
    its group or others may read is refused with DS_EPERM and a message
    naming the file, its mode and the chmod to run.

    Roles say what a key may send (docs/security.md):
        peer     coordinator keys: the PEER family, on the peer endpoint only
        admin    the ADMIN and VIEW families, on the rpc endpoint
        viewer   the VIEW family (status, history, workers, top, events)
        worker   the WORKER family (keys of joined workers)
        pending  a key the registry does not know, on the rpc endpoint, while
                 joins are open: DS_MSG_JOIN only, and only with a join token
                 (ds_transport_recv_as refuses a JOIN without one)
    Replies (DS_FAMILY_REPLY) travel from a server to a client and are never
    accepted by a server from anyone.

    The registry (ds_keyring_t) maps a public key to its role and name. It
    is shared by the ZAP handler's thread (protocol/zap.h) and the threads
    that receive messages (ds_transport_recv_as), so every function on it
    is thread-safe. A removed key is revoked: it is refused on every
    endpoint, even as "pending", until it is added again.

    Directory layout of an allow-list (ds_keyring_load_dir) and of what
    ds_keys_bootstrap writes:
        DIR/cluster.pub           public key of the coordinators' sockets
        DIR/peers/NAME.pub        role peer    (one per coordinator)
        DIR/admins/NAME.pub       role admin
        DIR/viewers/NAME.pub      role viewer
        DIR/workers/NAME.pub      role worker  (static; joined workers are
                                               pinned through Raft instead)
        DIR/private/              mode 0700: key pairs, NAME.key + NAME.key_secret
    A key's name is its file name without ".pub".

    This module is I/O (library ds_io): it reads and writes files.
*/
#ifndef DS_PROTOCOL_KEYS_H
#define DS_PROTOCOL_KEYS_H

#include "protocol/limits.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_KEY_TEXT_LEN   40             /* a 32-byte key in Z85 */
#define DS_KEY_MAX_FILE   8192           /* bytes read from one certificate file */
#define DS_KEYS_PER_DIR   4096           /* certificates loaded from one role directory */
#define DS_KEYS_MAX_COORD DS_MAX_MEMBERS /* coordinators ds_keys_bootstrap can make */

typedef enum {
    DS_ROLE_NONE = 0,    /* not admitted */
    DS_ROLE_PEER = 1,    /* a coordinator */
    DS_ROLE_ADMIN = 2,   /* admin commands and reads */
    DS_ROLE_VIEWER = 3,  /* reads only */
    DS_ROLE_WORKER = 4,  /* a joined worker */
    DS_ROLE_PENDING = 5, /* unknown key on rpc while joins are open: JOIN only */
    DS_ROLE_INSECURE = 6 /* a plain (--insecure) socket: nobody was authenticated */
} ds_role_t;

/*  The endpoint a socket serves, each with its own ZAP domain. */
typedef enum {
    DS_DOMAIN_PEER = 1, /* coordinators to coordinators: peer keys only */
    DS_DOMAIN_RPC = 2   /* workers and dsctl: admin, viewer, worker, pending */
} ds_domain_t;

/*  Returns the role's name ("admin", "pending"), or "?". Never NULL. */
const char *ds_role_name(ds_role_t role);

/*  Parses "peer", "admin", "viewer" or "worker" into *out. Returns 0, or
    DS_EINVAL for anything else (pending and insecure are not stored roles). */
int ds_role_parse(const char *text, ds_role_t *out);

/*  Returns the ZAP domain string of a domain ("gossamer.rpc"), or NULL
    for a value that is not a domain. */
const char *ds_domain_zap(ds_domain_t domain);

/*  Parses a ZAP domain string back; returns 0 and sets *out, or DS_EINVAL. */
int ds_domain_parse(const char *zap_domain, ds_domain_t *out);

/*  Whether a connection with `role` is admitted on `domain` at all. */
bool ds_role_admitted(ds_role_t role, ds_domain_t domain);

/*  Whether `role` may send a message of `type` (ds_msg_type_t or Raft
    type): 0, or DS_EFORBIDDEN. DS_ROLE_INSECURE may send anything. */
int ds_role_may_send(ds_role_t role, uint16_t type);

/* ---- key files ------------------------------------------------------ */

/*  Returns 0 when `text` is a 40-character Z85 key, else DS_EINVAL. */
int ds_keys_check_text(const char *text);

/*  Whether a key name is usable in files and logs: 1..DS_MAX_NAME bytes
    of [A-Za-z0-9._-], not starting with '.'. Returns 0 or DS_EINVAL. */
int ds_keys_check_name(const char *name);

/*  Generates a key pair named `name` and writes it to `path` (public,
    0644) and `path`_secret (0600, created with that mode, never widened
    by the umask or an existing file). Refuses to overwrite either file
    (DS_EEXIST). Returns 0, DS_EINVAL (bad name, path too long), DS_EEXIST
    or DS_EIO, with `err` saying which file and what to do. On error no
    file of the pair is left behind. */
int ds_keys_generate(const char *path, const char *name, char *err, size_t errlen);

/*  Checks that the secret file at `secret_path` is a regular file its
    group and others cannot read or write (0600 or stricter). Returns 0;
    DS_EPERM with "chmod 600 PATH" in `err`; DS_ENOTFOUND; or DS_EIO. */
int ds_keys_check_secret_mode(const char *secret_path, char *err, size_t errlen);

/*  Loads the key pair saved at `path` (reading `path`_secret; a path that
    already ends in "_secret" is read as is), after the mode check above.
    Returns 0 and sets *out (the caller destroys it with zcert_destroy),
    or DS_EPERM, DS_ENOTFOUND, DS_EINVAL (not a certificate, no secret
    key) or DS_EIO, with `err` naming the file; *out stays NULL. */
int ds_keys_load_pair(const char *path, zcert_t **out, char *err, size_t errlen);

/*  Loads the public key of the certificate at `path` (a public or secret
    file) as Z85 text into `key` (DS_KEY_TEXT_LEN + 1 bytes). Returns 0,
    DS_ENOTFOUND, DS_EINVAL or DS_EIO with `err` naming the file. */
int ds_keys_load_public(const char *path, char key[DS_KEY_TEXT_LEN + 1], char *err, size_t errlen);

/*  Writes the first keys of a cluster into `dir` (created if missing):
    private/cluster.key (the coordinators' server key pair) and
    cluster.pub, one pair private/coord-I.key for I in 1..n_coords with
    peers/coord-I.pub, a pair private/ADMIN.key with admins/ADMIN.pub,
    and empty viewers/ and workers/. private/ is mode 0700. Refuses to
    overwrite any file (DS_EEXIST). Returns 0 or an error with `err`
    saying what to do; after an error remove `dir` and run again. */
int ds_keys_bootstrap(const char *dir, unsigned n_coords, const char *admin_name, char *err,
                      size_t errlen);

/* ---- the registry --------------------------------------------------- */

typedef struct ds_keyring ds_keyring_t;

/*  Creates an empty registry; joins are closed (no pending role). Returns
    NULL when out of memory. */
ds_keyring_t *ds_keyring_new(void);

/*  Frees the registry and sets *self_p to NULL. Accepts NULL. Nothing may
    use it any more: destroy the ZAP handler and sockets first. */
void ds_keyring_destroy(ds_keyring_t **self_p);

/*  Adds `key` (Z85) with `role` (peer, admin, viewer or worker) and `name`
    (ds_keys_check_name). Adding a key again with the same role and name
    does nothing and returns 0 (Raft replays are idempotent); a key of
    another role or name is DS_EEXIST (remove it first). Adding a revoked
    key admits it again. Returns 0, DS_EINVAL, DS_EEXIST or DS_ENOMEM. */
int ds_keyring_add(ds_keyring_t *self, const char *key, ds_role_t role, const char *name, char *err,
                   size_t errlen);

/*  Removes and revokes `key`: from now on every message and connection
    that presents it is refused. Returns 0, DS_EINVAL (not a key) or
    DS_ENOTFOUND (not in the registry; it is revoked anyway). */
int ds_keyring_remove(ds_keyring_t *self, const char *key);

/*  Looks `key` up: returns 0 and fills *role and `name` (namelen bytes;
    may be NULL), DS_ENOTFOUND for an unknown key, or DS_EPERM for a
    revoked one. */
int ds_keyring_lookup(ds_keyring_t *self, const char *key, ds_role_t *role, char *name,
                      size_t namelen);

/*  Decides the role of a connection or message that presents `key` on
    `domain`: a known key with a role admitted there; an unknown key on
    the rpc domain while joins are open is DS_ROLE_PENDING. Returns 0 and
    fills *role and `name` (the key's name, or "" when pending), or
    DS_EFORBIDDEN (unknown, revoked, or a role not admitted on `domain`). */
int ds_keyring_resolve(ds_keyring_t *self, const char *key, ds_domain_t domain, ds_role_t *role,
                       char *name, size_t namelen);

/*  Opens (true) or closes joins: whether unknown keys may connect on the
    rpc domain as DS_ROLE_PENDING. Closed when the registry is made. */
void ds_keyring_set_joins(ds_keyring_t *self, bool open);

/*  Returns the number of keys (not counting revoked ones). */
size_t ds_keyring_size(ds_keyring_t *self);

/*  Adds every NAME.pub in DIR/peers, DIR/admins, DIR/viewers and
    DIR/workers with the directory's role (a missing directory adds
    nothing). Refuses a secret key file in those directories, a file that
    is not a certificate, and a key listed under two roles. Returns 0 or
    the first error with `err` naming the file; keys added before an
    error stay added. */
int ds_keyring_load_dir(ds_keyring_t *self, const char *dir, char *err, size_t errlen);

#endif
