/*  coordinator/node_tokens.c - the admin side of security on the rpc
    endpoint: join tokens (create, revoke: through Raft; list: a read)
    and worker removal, which revokes the worker's key on every member
    as the command applies (docs/security.md). */
#include "coordinator/node_impl.h"

#include "coordinator/fsm.h"
#include "coordinator/token_state.h"
#include "protocol/error.h"
#include "protocol/log.h"
#include "storage/state.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "auth"

static void s_on_create(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_token_create_t *req = msg->body;
    if (!ds_token_id_ok(req->id)) {
        ds_node_reply_error(self, caller, DS_EINVAL,
                            "token create: id \"%s\" is not 1 to %u letters, digits, '_' or '-'",
                            req->id, DS_MAX_NAME);
        return;
    }
    if (strlen(req->secret) < DS_TOKEN_SECRET_MIN) {
        ds_node_reply_error(self, caller, DS_EINVAL,
                            "token create: the secret has %zu characters, fewer than %u",
                            strlen(req->secret), DS_TOKEN_SECRET_MIN);
        return;
    }
    char hash[DS_TOKEN_HASH_LEN + 1];
    ds_token_sha256_hex(req->secret, strlen(req->secret), hash);
    ds_token_cmd_t cmd = {req->id, hash, req->ttl_ms, req->uses, req->n_labels, req->labels};
    ds_node_propose(self, caller, msg->env.sender, caller->corr_id, DS_CMD_TOKEN_CREATE, &cmd,
                    req->id);
}

void ds_node_on_tokens(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg)
{
    const ds_msg_t *m = *msg;
    if (m->env.type == DS_MSG_TOKEN_LIST) {
        const ds_query_req_t *q = m->body;
        if (q->stale)
            ds_node_serve_tokens(self, caller, m);
        else
            ds_node_read_linearizable(self, caller, msg);
        return;
    }
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    if (m->env.type == DS_MSG_TOKEN_CREATE) {
        s_on_create(self, caller, m);
    } else if (m->env.type == DS_MSG_TOKEN_REVOKE) {
        const ds_token_revoke_t *r = m->body;
        ds_node_propose(self, caller, m->env.sender, caller->corr_id, DS_CMD_TOKEN_REVOKE, r,
                        r->id);
    } else {
        const ds_worker_remove_t *r = m->body;
        ds_node_propose(self, caller, m->env.sender, caller->corr_id, DS_CMD_WORKER_REMOVE, r,
                        r->name);
    }
}

void ds_node_tokens_done(ds_node_t *self, ds_pending_write_t *w, uint64_t index)
{
    const char *state = "created", *what = "token";
    if (w->caller.type == DS_MSG_TOKEN_REVOKE)
        state = "revoked";
    else if (w->caller.type == DS_MSG_WORKER_REMOVE)
        state = "removed", what = "worker";
    char text[DS_MAX_KV_KEY + 64];
    snprintf(text, sizeof text, "%s %s %s", what, w->key, state);
    ds_op_reply_t reply = {w->key, 0, 0, (char *)state, text, index};
    DS_LOG(DS_LOG_INFO, S_MOD, text, "%s=%s index=%" PRIu64, what, w->key, index);
    if (w->caller.type == DS_MSG_WORKER_REMOVE)
        ds_node_event(self, "worker_removed", "", "worker %s was removed; its key is revoked",
                      w->key);
    ds_node_reply(self, &w->caller, DS_MSG_OP_REPLY, &reply);
}

typedef struct {
    ds_arena_t *arena;
    ds_token_row_t *rows;
    uint32_t n, cap;
} s_list_t;

static char *s_dup(ds_arena_t *arena, const char *text)
{
    size_t len = strlen(text ? text : "");
    char *copy = ds_arena_alloc(arena, len + 1);
    if (copy)
        memcpy(copy, text ? text : "", len + 1);
    return copy;
}

static int s_list_row(void *ctx, const ds_token_record_t *t)
{
    s_list_t *l = ctx;
    if (l->n == l->cap)
        return 1;
    ds_token_row_t *row = &l->rows[l->n];
    *row = (ds_token_row_t){
        .id = s_dup(l->arena, t->id),
        .created_at_ms = t->created_at_ms,
        .expires_at_ms = t->expires_at_ms,
        .uses = t->uses,
        .used = t->used,
        .revoked = t->revoked,
        .created_by = s_dup(l->arena, t->created_by),
        .n_labels = t->n_labels,
        .labels = t->n_labels ? ds_arena_alloc(l->arena, sizeof(ds_kv_t) * t->n_labels) : NULL,
    };
    if (!row->id || !row->created_by || (t->n_labels && !row->labels))
        return DS_ENOMEM;
    for (uint32_t i = 0; i < t->n_labels; i++) {
        row->labels[i].key = s_dup(l->arena, t->labels[i].key);
        row->labels[i].value = s_dup(l->arena, t->labels[i].value);
        if (!row->labels[i].key || !row->labels[i].value)
            return DS_ENOMEM;
    }
    l->n++;
    return 0;
}

static int s_list_read(ds_txn_t *txn, void *ctx)
{
    return ds_token_state_list(txn, s_list_row, ctx);
}

void ds_node_serve_tokens(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_query_req_t *q = msg->body;
    uint32_t cap = q->limit && q->limit < DS_MAX_ROWS ? q->limit : DS_MAX_ROWS;
    s_list_t l = {ds_arena_new(8u * 1024 * 1024), NULL, 0, cap};
    int rc = DS_ENOMEM;
    if (l.arena && (l.rows = ds_arena_alloc(l.arena, sizeof *l.rows * cap)))
        rc = ds_store_read(ds_replica_store(self->replica), s_list_read, &l);
    if (rc != 0) {
        ds_node_reply_error(self, caller, rc, "listing tokens failed: %s", ds_strerror(rc));
    } else {
        ds_token_list_reply_t reply = {l.n, l.rows};
        ds_node_reply(self, caller, DS_MSG_TOKEN_LIST_REPLY, &reply);
    }
    ds_arena_destroy(&l.arena);
}
