/*  coordinator/fsm.c - command encoding for the replicated state machine. */
#include "coordinator/fsm.h"

#include "coordinator/rollout.h"
#include "coordinator/token_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/msg.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const ds_field_t s_command_fields[] = {
    DS_F_U16(ds_command_t, type, DS_CMD_MAX),
    DS_F_STR(ds_command_t, client, DS_FSM_MAX_CLIENT),
    DS_F_U64(ds_command_t, request_id),
    DS_F_U64(ds_command_t, ts_ms),
    DS_F_BYTES(ds_command_t, body, DS_MAX_ENTRY_SIZE),
};
const ds_desc_t ds_command_desc = DS_DESC(ds_command_t, "command", s_command_fields);

static const ds_field_t s_expire_fields[] = {DS_F_U64(ds_expire_t, before_ms)};
const ds_desc_t ds_expire_desc = DS_DESC(ds_expire_t, "expire", s_expire_fields);

static const ds_field_t s_session_fields[] = {
    DS_F_U64(ds_session_t, request_id),
    DS_F_I64(ds_session_t, result),
    DS_F_U64(ds_session_t, index),
    DS_F_U64(ds_session_t, last_ms),
};
const ds_desc_t ds_session_desc = DS_DESC(ds_session_t, "session", s_session_fields);

static const ds_field_t s_kv_record_fields[] = {
    DS_F_U64(ds_kv_record_t, version),
    DS_F_U64(ds_kv_record_t, mod_index),
    DS_F_BYTES(ds_kv_record_t, value, DS_MAX_KV_VALUE),
};
const ds_desc_t ds_kv_record_desc = DS_DESC(ds_kv_record_t, "kv_record", s_kv_record_fields);

const ds_desc_t *ds_fsm_body_desc(uint16_t type)
{
    switch (type) {
    case DS_CMD_KV_PUT:
        return ds_msg_desc(DS_MSG_KV_PUT);
    case DS_CMD_EXPIRE_SESSIONS:
        return &ds_expire_desc;
    case DS_CMD_DEPLOY:
        return ds_msg_desc(DS_MSG_DEPLOY);
    case DS_CMD_PROMOTE:
        return ds_msg_desc(DS_MSG_PROMOTE);
    case DS_CMD_PAUSE:
        return ds_msg_desc(DS_MSG_PAUSE);
    case DS_CMD_RESUME:
        return ds_msg_desc(DS_MSG_RESUME);
    case DS_CMD_ABORT:
        return ds_msg_desc(DS_MSG_ABORT);
    case DS_CMD_ROLLBACK:
        return ds_msg_desc(DS_MSG_ROLLBACK);
    case DS_CMD_WORKER_JOIN:
        return ds_msg_desc(DS_MSG_JOIN);
    case DS_CMD_ROLLOUT:
        return &ds_rollout_batch_desc;
    case DS_CMD_TOKEN_CREATE:
        return &ds_token_cmd_desc;
    case DS_CMD_TOKEN_REVOKE:
        return ds_msg_desc(DS_MSG_TOKEN_REVOKE);
    case DS_CMD_WORKER_REMOVE:
        return ds_msg_desc(DS_MSG_WORKER_REMOVE);
    case DS_CMD_WORKER_JOIN_KEYED:
        return &ds_worker_join_cmd_desc;
    default:
        return NULL;
    }
}

int ds_fsm_encode(uint16_t type, const char *client, uint64_t request_id, uint64_t ts_ms,
                  const void *body, ds_buf_t *out, ds_codec_err_t *err)
{
    const ds_desc_t *desc = ds_fsm_body_desc(type);
    assert(desc && body && out);
    ds_buf_t encoded = {0};
    int rc = ds_codec_encode(desc, body, &encoded, err);
    if (rc == 0 && encoded.len > DS_MAX_ENTRY_SIZE)
        rc = DS_ETOOBIG;
    if (rc == 0) {
        ds_command_t cmd = {
            .type = type,
            .client = (char *)client,
            .request_id = request_id,
            .ts_ms = ts_ms,
            .body = {encoded.data, (uint32_t)encoded.len},
        };
        rc = ds_codec_encode(&ds_command_desc, &cmd, out, err);
    }
    ds_buf_free(&encoded);
    return rc;
}

int ds_fsm_decode(const uint8_t *data, size_t len, ds_arena_t *arena, ds_command_t *cmd,
                  void **body_out, ds_codec_err_t *err)
{
    int rc = ds_codec_decode(&ds_command_desc, data, len, cmd, arena, err);
    if (rc != 0)
        return rc;
    const ds_desc_t *desc = ds_fsm_body_desc(cmd->type);
    if (!desc) {
        if (err) {
            err->code = DS_EUNKNOWN;
            snprintf(err->text, sizeof err->text, "command.type: %u is not a command", cmd->type);
        }
        return DS_EUNKNOWN;
    }
    void *body = ds_arena_alloc(arena, desc->size);
    if (!body)
        return DS_ENOMEM;
    rc = ds_codec_decode(desc, cmd->body.data, cmd->body.len, body, arena, err);
    if (rc == 0)
        *body_out = body;
    return rc;
}
