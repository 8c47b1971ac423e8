/*  protocol/msg.h - the envelope and the catalog of message types.

    On the wire a message is two ZeroMQ frames (after any routing frames):
      frame 1: the envelope, msgpack [version, type, correlation id, sender]
      frame 2: the body, msgpack, described by the type's entry in the
               catalog (a ds_raft_msg_t for Raft types, a struct from
               protocol/messages.h otherwise).
    A receiver decodes the envelope first, so it can refuse an unknown
    type, a wrong version or a type the sender's role may not send before
    it touches the body.
*/
#ifndef DS_PROTOCOL_MSG_H
#define DS_PROTOCOL_MSG_H

#include "protocol/arena.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/messages.h"
#include "protocol/raft_msg.h"

#include <stddef.h>
#include <stdint.h>

/*  Message type ids: stable on the wire. Raft types 1..11 are the
    ds_raft_type_t values. */
typedef enum {
    DS_MSG_PEER_HELLO = 16,

    DS_MSG_JOIN = 32,
    DS_MSG_JOIN_REPLY = 33,
    DS_MSG_HEARTBEAT = 34,
    DS_MSG_HEARTBEAT_REPLY = 35,
    DS_MSG_ASSIGNMENT_REQ = 36,
    DS_MSG_ASSIGNMENT = 37,
    DS_MSG_INSTANCE_EVENT = 38,

    DS_MSG_DEPLOY = 64,
    DS_MSG_ROLLBACK = 65,
    DS_MSG_PROMOTE = 66,
    DS_MSG_PAUSE = 67,
    DS_MSG_RESUME = 68,
    DS_MSG_ABORT = 69,
    DS_MSG_OP_REPLY = 70,
    DS_MSG_STATUS = 71,
    DS_MSG_STATUS_REPLY = 72,
    DS_MSG_HISTORY = 73,
    DS_MSG_HISTORY_REPLY = 74,
    DS_MSG_WORKERS = 75,
    DS_MSG_WORKERS_REPLY = 76,
    DS_MSG_TOP = 77,
    DS_MSG_TOP_REPLY = 78,
    DS_MSG_EVENTS = 79,
    DS_MSG_EVENTS_REPLY = 80,
    DS_MSG_CLUSTER_STATUS = 81,
    DS_MSG_CLUSTER_STATUS_REPLY = 82,
    DS_MSG_CLUSTER_TRANSFER = 83,
    DS_MSG_CLUSTER_ADD = 84,
    DS_MSG_CLUSTER_REMOVE = 85,
    DS_MSG_KV_PUT = 86, /* cluster key-value settings: write */
    DS_MSG_KV_GET = 87, /* ... read */
    DS_MSG_KV_REPLY = 88,
    DS_MSG_TOKEN_CREATE = 89, /* join tokens (docs/security.md) */
    DS_MSG_TOKEN_REVOKE = 90,
    DS_MSG_TOKEN_LIST = 91,
    DS_MSG_TOKEN_LIST_REPLY = 92,
    DS_MSG_WORKER_REMOVE = 93,

    DS_MSG_ERROR = 96,
    DS_MSG_NOT_LEADER = 97
} ds_msg_type_t;

/*  Which family a type belongs to: who may send it (see DESIGN.md,
    "Wire protocol": roles are checked against families). */
typedef enum {
    DS_FAMILY_NONE = 0, /* unknown type */
    DS_FAMILY_PEER,     /* coordinator to coordinator */
    DS_FAMILY_WORKER,   /* worker requests and their replies */
    DS_FAMILY_ADMIN,    /* admin writes */
    DS_FAMILY_VIEW,     /* admin reads (a viewer key may send them) */
    DS_FAMILY_REPLY     /* replies: error, not leader, op and query replies */
} ds_msg_family_t;

typedef struct {
    uint8_t version;  /* DS_PROTOCOL_VERSION */
    uint16_t type;    /* ds_msg_type_t or ds_raft_type_t */
    uint64_t corr_id; /* chosen by the requester, echoed in the reply */
    char *sender;     /* member id, worker name or client name; at most DS_MAX_NAME */
} ds_envelope_t;

/*  A decoded message. The body's struct, and everything it points to,
    live in `arena`; ds_msg_destroy() frees all of it. */
typedef struct {
    ds_envelope_t env;
    void *body;
    ds_arena_t *arena;
} ds_msg_t;

/*  The body description of DS_MSG_JOIN (embedded in the coordinator's
    join command). */
extern const ds_desc_t ds_join_req_desc;

/*  Returns the body description of a message type, or NULL if unknown. */
const ds_desc_t *ds_msg_desc(uint16_t type);

/*  Returns the family of a type; DS_FAMILY_NONE if unknown. */
ds_msg_family_t ds_msg_family(uint16_t type);

/*  Returns the type's stable name ("join", "vote_resp"), or "unknown". */
const char *ds_msg_type_name(uint16_t type);

/*  Stable names of instance states ("running") and health states
    ("passing"), as status replies and dsctl show them; "unknown" for a
    number out of range. Never NULL. */
const char *ds_inst_state_name(int state);
const char *ds_health_state_name(int health);

/*  Encodes an envelope (frame 1) into `env_out` and the body of type
    env->type (frame 2) into `body_out`; both are appended to. Returns 0,
    DS_EUNKNOWN for a type not in the catalog, or an encoding error with
    `err` filled (may be NULL). */
int ds_msg_encode(const ds_envelope_t *env, const void *body, ds_buf_t *env_out, ds_buf_t *body_out,
                  ds_codec_err_t *err);

/*  Decodes an envelope frame into `env`; its sender string lives in
    `arena`. Refuses a wrong version (DS_EVERSION) or unknown type
    (DS_EUNKNOWN). Returns 0 or a negative DS_E code with `err` filled. */
int ds_envelope_decode(const void *data, size_t len, ds_envelope_t *env, ds_arena_t *arena,
                       ds_codec_err_t *err);

/*  Decodes both frames into a new message that the caller owns and frees
    with ds_msg_destroy(). Input is untrusted: every length and count is
    bounded and the memory used is capped in proportion to the input.
    Returns 0 and sets *out, or a negative DS_E code with `err` filled and
    *out NULL. */
int ds_msg_decode(const void *env_data, size_t env_len, const void *body_data, size_t body_len,
                  ds_msg_t **out, ds_codec_err_t *err);

/*  Frees a decoded message and sets *self_p to NULL. Accepts NULL. */
void ds_msg_destroy(ds_msg_t **self_p);

#endif
