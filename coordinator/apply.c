/*  coordinator/apply.c - command application with exactly-once sessions. */
#include "coordinator/apply.h"

#include "coordinator/fsm.h"
#include "coordinator/release_state.h"
#include "coordinator/token_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/messages.h"
#include "storage/state.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* Storage failures stop the member; everything else is a verdict on the
   command that every member reaches identically. */
static bool s_storage_error(int rc)
{
    return rc == DS_ENOMEM || rc == DS_EIO || rc == DS_ECORRUPT || rc == DS_ESTORE_FULL ||
           rc == DS_ELIMIT;
}

static int s_session_load(ds_txn_t *txn, const char *client, ds_arena_t *arena, ds_session_t *s)
{
    ds_val_t v;
    int rc = ds_state_get(txn, DS_TABLE_SESSIONS, client, &v);
    if (rc != 0)
        return rc;
    rc = ds_codec_decode(&ds_session_desc, v.data, v.len, s, arena, NULL);
    return rc == 0 ? 0 : ds_txn_fail(txn, DS_ECORRUPT, "session of %s is unreadable", client);
}

static int s_session_save(ds_txn_t *txn, const char *client, const ds_session_t *s)
{
    ds_buf_t buf = {0};
    int rc = ds_codec_encode(&ds_session_desc, s, &buf, NULL);
    if (rc == 0)
        rc = ds_state_put(txn, DS_TABLE_SESSIONS, client, buf.data, buf.len);
    ds_buf_free(&buf);
    return rc;
}

/*  Each write bumps the key's version, so a write applied twice would
    show: tests check that every acknowledged write counts exactly once. */
static int s_kv_put(ds_txn_t *txn, uint64_t index, const ds_kv_put_t *put, ds_arena_t *arena)
{
    if (!put->key[0])
        return DS_EINVAL;
    ds_kv_record_t rec = {0};
    ds_val_t old;
    int rc = ds_state_get(txn, DS_TABLE_KV, put->key, &old);
    if (rc == 0 && ds_codec_decode(&ds_kv_record_desc, old.data, old.len, &rec, arena, NULL) != 0)
        return ds_txn_fail(txn, DS_ECORRUPT, "kv record %s is unreadable", put->key);
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;
    rec.version++;
    rec.mod_index = index;
    rec.value = put->value;
    ds_buf_t buf = {0};
    rc = ds_codec_encode(&ds_kv_record_desc, &rec, &buf, NULL);
    if (rc == 0)
        rc = ds_state_put(txn, DS_TABLE_KV, put->key, buf.data, buf.len);
    ds_buf_free(&buf);
    return rc;
}

typedef struct {
    ds_txn_t *txn;
    uint64_t before_ms;
    ds_arena_t *arena;
    char names[64][DS_MAX_NAME + 1];
    size_t n;
} s_expire_ctx_t;

static int s_collect_expired(void *ctx, const ds_state_row_t *row)
{
    s_expire_ctx_t *e = ctx;
    ds_session_t s;
    if (ds_codec_decode(&ds_session_desc, row->val, row->len, &s, e->arena, NULL) != 0)
        return ds_txn_fail(e->txn, DS_ECORRUPT, "session of %s is unreadable", row->name);
    if (s.last_ms < e->before_ms && strlen(row->name) <= DS_MAX_NAME)
        strcpy(e->names[e->n++], row->name);
    return e->n == sizeof e->names / sizeof e->names[0] ? 1 : 0;
}

/*  Deletes idle sessions, in batches so the list callback never deletes
    under its own cursor. */
static int s_expire_sessions(ds_txn_t *txn, const ds_expire_t *x, ds_arena_t *arena)
{
    s_expire_ctx_t e = {.txn = txn, .before_ms = x->before_ms, .arena = arena};
    for (;;) {
        e.n = 0;
        int rc = ds_state_list(txn, DS_TABLE_SESSIONS, s_collect_expired, &e);
        for (size_t i = 0; rc == 0 && i < e.n; i++)
            rc = ds_state_del(txn, DS_TABLE_SESSIONS, e.names[i]);
        if (rc != 0 || e.n < sizeof e.names / sizeof e.names[0])
            return rc;
    }
}

static int s_dispatch(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd, const void *body,
                      ds_arena_t *arena, ds_apply_effect_t *eff)
{
    switch (cmd->type) {
    case DS_CMD_TOKEN_CREATE:
        return ds_token_state_create(txn, cmd, body);
    case DS_CMD_TOKEN_REVOKE:
        return ds_token_state_revoke(txn, ((const ds_token_revoke_t *)body)->id);
    case DS_CMD_WORKER_REMOVE: {
        const ds_worker_remove_t *r = body;
        int rc = ds_worker_state_remove(txn, r->name, eff->key);
        if (rc == 0) {
            eff->kind = DS_APPLY_KEY_REVOKE;
            snprintf(eff->name, sizeof eff->name, "%s", r->name);
        }
        return rc;
    }
    case DS_CMD_WORKER_JOIN_KEYED: {
        const ds_worker_join_cmd_t *j = body;
        int rc = ds_worker_state_join_keyed(txn, index, cmd, j);
        if (rc == 0) {
            eff->kind = DS_APPLY_KEY_PIN;
            snprintf(eff->key, sizeof eff->key, "%s", j->key ? j->key : "");
            snprintf(eff->name, sizeof eff->name, "%s", j->join.name);
        }
        return rc;
    }
    case DS_CMD_KV_PUT:
        return s_kv_put(txn, index, body, arena);
    case DS_CMD_EXPIRE_SESSIONS:
        return s_expire_sessions(txn, body, arena);
    case DS_CMD_DEPLOY:
    case DS_CMD_PROMOTE:
    case DS_CMD_PAUSE:
    case DS_CMD_RESUME:
    case DS_CMD_ABORT:
    case DS_CMD_ROLLBACK:
    case DS_CMD_ROLLOUT:
        return ds_release_state_apply(txn, index, cmd, body);
    case DS_CMD_WORKER_JOIN:
        return ds_worker_state_join(txn, index, cmd, body);
    default:
        return DS_EUNKNOWN;
    }
}

typedef struct {
    uint64_t index;
    const ds_command_t *cmd;
    const void *body;
    ds_arena_t *arena;
    ds_apply_effect_t *effect;
} s_cmd_ctx_t;

static int s_dispatch_nested(ds_txn_t *txn, void *ctx)
{
    s_cmd_ctx_t *c = ctx;
    *c->effect = (ds_apply_effect_t){0};
    return s_dispatch(txn, c->index, c->cmd, c->body, c->arena, c->effect);
}

/*  Runs the command in a child transaction, so that a refusal discards the
    command's own changes and nothing else. Returns 0 with the command's
    result in *verdict, or a storage error. */
static int s_run(ds_txn_t *txn, s_cmd_ctx_t *c, int *verdict)
{
    int r = ds_txn_nested(txn, s_dispatch_nested, c);
    if (s_storage_error(r) || ds_txn_failed(txn))
        return r ? r : DS_EIO;
    *verdict = r;
    return 0;
}

/*  A command with a client session: a retry is answered from the session;
    otherwise the command runs and its result, refusals included, is
    recorded, so a refused request stays refused when it is retried. */
static int s_apply_with_session(ds_txn_t *txn, s_cmd_ctx_t *c, int *verdict)
{
    const ds_command_t *cmd = c->cmd;
    ds_session_t s = {0};
    int rc = s_session_load(txn, cmd->client, c->arena, &s);
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;
    if (rc == 0 && cmd->request_id <= s.request_id) {
        *verdict = (int)s.result; /* a retry: applied once already */
        return 0;
    }
    rc = s_run(txn, c, verdict);
    if (rc != 0)
        return rc;
    s = (ds_session_t){cmd->request_id, *verdict, c->index, cmd->ts_ms};
    return s_session_save(txn, cmd->client, &s);
}

int ds_apply_entry(ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict)
{
    ds_apply_effect_t effect;
    return ds_apply_entry_ex(txn, entry, verdict, &effect);
}

int ds_apply_entry_ex(ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict,
                      ds_apply_effect_t *effect)
{
    *verdict = 0;
    *effect = (ds_apply_effect_t){0};
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(entry->data.len, 4096));
    if (!arena)
        return DS_ENOMEM;
    ds_command_t cmd;
    void *body = NULL;
    int rc = ds_fsm_decode(entry->data.data, entry->data.len, arena, &cmd, &body, NULL);
    if (rc == DS_ENOMEM)
        goto out;
    if (rc != 0) {
        *verdict = rc == DS_EUNKNOWN ? DS_EUNKNOWN : DS_EINVAL; /* same on every member */
        rc = 0;
        goto out;
    }
    s_cmd_ctx_t c = {entry->index, &cmd, body, arena, effect};
    if (cmd.client[0] && cmd.request_id)
        rc = s_apply_with_session(txn, &c, verdict);
    else
        rc = s_run(txn, &c, verdict);
out:
    if (rc != 0 || *verdict != 0)
        *effect = (ds_apply_effect_t){0};
    ds_arena_destroy(&arena);
    return rc;
}
