/*  coordinator/fsm.h - commands of the replicated state machine (pure).

    Every change to the desired state is a command in a Raft entry: its
    type, the client that asked, the client's request id (for exactly-once
    application across retries), the leader's clock when it proposed it
    (so every member applies the same time), and the request body encoded
    with its message's wire description.

    The state machine remembers, per client, the last request id it
    applied and that request's result (the "session"); a retried request
    with an id it has seen is answered from the session instead of being
    applied twice. Sessions idle for longer than DS_FSM_SESSION_TTL_MS are
    expired by a command the leader proposes, so the table stays bounded.
*/
#ifndef DS_COORDINATOR_FSM_H
#define DS_COORDINATOR_FSM_H

#include "protocol/arena.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/types.h"

#include <stdint.h>

#define DS_FSM_SESSION_TTL_MS (60ull * 60 * 1000) /* one hour */
#define DS_FSM_MAX_CLIENT     DS_MAX_NAME

typedef enum {
    DS_CMD_KV_PUT = 1,          /* body: ds_kv_put_t */
    DS_CMD_EXPIRE_SESSIONS = 2, /* body: ds_expire_t */
    /* release state (coordinator/release_state.h) */
    DS_CMD_DEPLOY = 3,   /* body: ds_deploy_req_t */
    DS_CMD_PROMOTE = 4,  /* body: ds_service_req_t */
    DS_CMD_PAUSE = 5,    /* body: ds_service_req_t */
    DS_CMD_RESUME = 6,   /* body: ds_service_req_t */
    DS_CMD_ABORT = 7,    /* body: ds_service_req_t */
    DS_CMD_ROLLBACK = 8, /* body: ds_service_req_t */
    /* worker registry (coordinator/worker_state.h) */
    DS_CMD_WORKER_JOIN = 9, /* body: ds_join_req_t */
    /* the rollout controller's decisions (coordinator/release_state.h) */
    DS_CMD_ROLLOUT = 10, /* body: ds_rollout_batch_t */
    /* security (coordinator/token_state.h, coordinator/worker_state.h) */
    DS_CMD_TOKEN_CREATE = 11,     /* body: ds_token_cmd_t */
    DS_CMD_TOKEN_REVOKE = 12,     /* body: ds_token_revoke_t */
    DS_CMD_WORKER_REMOVE = 13,    /* body: ds_worker_remove_t */
    DS_CMD_WORKER_JOIN_KEYED = 14 /* body: ds_worker_join_cmd_t */
} ds_cmd_type_t;
#define DS_CMD_MAX DS_CMD_WORKER_JOIN_KEYED

typedef struct {
    uint16_t type;       /* ds_cmd_type_t */
    char *client;        /* who asked: "" for the controller */
    uint64_t request_id; /* the client's id for this request, 0 = no dedupe */
    uint64_t ts_ms;      /* leader's wall clock at proposal */
    ds_bytes_t body;     /* the request, encoded with its description */
} ds_command_t;

typedef struct {
    uint64_t before_ms; /* sessions last used before this time go */
} ds_expire_t;

/*  A client's session, as stored. */
typedef struct {
    uint64_t request_id;
    int64_t result;
    uint64_t index; /* Raft index of that request */
    uint64_t last_ms;
} ds_session_t;

/*  A key of the replicated key-value table, as stored. */
typedef struct {
    uint64_t version;   /* writes so far: 1 after the first */
    uint64_t mod_index; /* Raft index of the last write */
    ds_bytes_t value;
} ds_kv_record_t;

extern const ds_desc_t ds_kv_record_desc;
extern const ds_desc_t ds_command_desc;
extern const ds_desc_t ds_expire_desc;
extern const ds_desc_t ds_session_desc;

/*  Returns the description of a command type's body, or NULL. */
const ds_desc_t *ds_fsm_body_desc(uint16_t type);

/*  Encodes a command whose body is the struct `body` (described by the
    type's description) into `out`. Returns 0 or a codec error. */
int ds_fsm_encode(uint16_t type, const char *client, uint64_t request_id, uint64_t ts_ms,
                  const void *body, ds_buf_t *out, ds_codec_err_t *err)
    __attribute__((warn_unused_result));

/*  Decodes an entry's data into *cmd and its body into *body_out (a
    struct allocated in `arena`). Returns 0, DS_EUNKNOWN (type) or a codec
    error. */
int ds_fsm_decode(const uint8_t *data, size_t len, ds_arena_t *arena, ds_command_t *cmd,
                  void **body_out, ds_codec_err_t *err) __attribute__((warn_unused_result));

#endif
