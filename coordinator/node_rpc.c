/*  coordinator/node_rpc.c - requests from dsctl and workers: writes go
    through Raft and are answered when applied; reads wait for a ReadIndex
    round unless the client asked for a stale read. */
#include "coordinator/node_impl.h"

#include "coordinator/fsm.h"
#include "protocol/error.h"
#include "protocol/log.h"
#include "storage/state.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "rpc"

bool ds_node_is_leader(const ds_node_t *self)
{
    return self->role == DS_RAFT_LEADER;
}

static bool s_is_leader(const ds_node_t *self)
{
    return ds_node_is_leader(self);
}

/*  Moves the caller's routing frame into a kept copy. */
static ds_caller_t s_keep(ds_caller_t *caller)
{
    ds_caller_t kept = *caller;
    caller->rid = NULL;
    return kept;
}

int ds_node_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max)
{
    if (n < *cap)
        return 0;
    if (n >= max)
        return DS_ELIMIT;
    size_t c = *cap ? *cap * 2 : 16;
    void *grown = realloc(*arr, c * elem);
    if (!grown)
        return DS_ENOMEM;
    *arr = grown;
    *cap = c;
    return 0;
}

/* ---- writes ------------------------------------------------------------------ */

void ds_node_reply_propose_error(ds_node_t *self, ds_caller_t *caller, int rc)
{
    if (rc == DS_ENOTLEADER)
        ds_node_reply_not_leader(self, caller);
    else if (rc == DS_ESTATE)
        ds_node_reply_error(self, caller, rc, "leadership is being transferred: retry in a moment");
    else
        ds_node_reply_error(self, caller, rc, "cannot accept the write now (%s): retry later",
                            ds_strerror(rc));
}

/*  Proposes a command and remembers who to answer when it applies. */
void ds_node_propose(ds_node_t *self, ds_caller_t *caller, const char *client, uint64_t request_id,
                     uint16_t type, const void *body, const char *key)
{
    ds_buf_t buf = {0};
    ds_codec_err_t err;
    uint64_t index = 0;
    int rc = ds_fsm_encode(type, client, request_id, ds_clock_wall_ms(), body, &buf, &err);
    if (rc != 0) {
        ds_node_reply_error(self, caller, rc, "invalid request: %s", err.text);
        goto out;
    }
    rc = ds_node_grow((void **)&self->writes, &self->cap_writes, self->n_writes,
                      sizeof *self->writes, DS_NODE_MAX_PENDING);
    if (rc == 0)
        rc = ds_raft_propose(ds_replica_raft(self->replica), buf.data, (uint32_t)buf.len, &index);
    if (rc != 0) {
        ds_node_reply_propose_error(self, caller, rc);
        goto out;
    }
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(self->replica), &st);
    ds_pending_write_t *w = &self->writes[self->n_writes++];
    *w = (ds_pending_write_t){.caller = s_keep(caller), .index = index, .term = st.term};
    snprintf(w->key, sizeof w->key, "%s", key ? key : "");
out:
    ds_buf_free(&buf);
}

static void s_on_kv_put(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_kv_put_t *put = msg->body;
    if (!s_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    if (!put->key[0]) {
        ds_node_reply_error(self, caller, DS_EINVAL, "kv put: the key is empty (give a name)");
        return;
    }
    ds_node_propose(self, caller, msg->env.sender, caller->corr_id, DS_CMD_KV_PUT, put, put->key);
}

static void s_write_done(ds_node_t *self, ds_pending_write_t *w, int result, uint64_t index)
{
    if (result != 0) {
        ds_node_reply_error(self, &w->caller, result,
                            "%s %s was refused when it applied: %s (the state changed since "
                            "the request was checked; look again and retry)",
                            ds_msg_type_name(w->caller.type), w->key, ds_strerror(result));
    } else if (w->caller.type == DS_MSG_JOIN) {
        ds_node_join_done(self, w, index);
    } else if (w->caller.type == DS_MSG_TOKEN_CREATE || w->caller.type == DS_MSG_TOKEN_REVOKE ||
               w->caller.type == DS_MSG_WORKER_REMOVE) {
        ds_node_tokens_done(self, w, index);
    } else if (w->caller.type == DS_MSG_KV_PUT) {
        ds_kv_reply_t reply = {w->key, true, {NULL, 0}, index, 0, index};
        ds_node_reply(self, &w->caller, DS_MSG_KV_REPLY, &reply);
    } else {
        ds_node_admin_done(self, w, index);
    }
    ds_node_caller_free(&w->caller);
}

static void s_write_lost(ds_node_t *self, ds_pending_write_t *w)
{
    ds_node_reply_error(self, &w->caller, DS_ENOTLEADER,
                        "leadership changed before the write committed: retry (a retry with "
                        "the same request id is applied at most once)");
    ds_node_caller_free(&w->caller);
}

static void s_writes_shift(ds_node_t *self, size_t n)
{
    if (n == 0)
        return; /* also: writes may still be NULL */
    memmove(self->writes, self->writes + n, (self->n_writes - n) * sizeof *self->writes);
    self->n_writes -= n;
}

void ds_node_writes_applied(ds_node_t *self, uint64_t index, uint64_t term, int result)
{
    size_t done = 0;
    while (done < self->n_writes && self->writes[done].index <= index) {
        ds_pending_write_t *w = &self->writes[done++];
        if (w->index == index && w->term == term)
            s_write_done(self, w, result, index);
        else
            s_write_lost(self, w); /* its index now holds another leader's entry */
    }
    s_writes_shift(self, done);
}

void ds_node_writes_fail_all(ds_node_t *self)
{
    for (size_t i = 0; i < self->n_writes; i++)
        s_write_lost(self, &self->writes[i]);
    self->n_writes = 0;
}

void ds_node_writes_expire(ds_node_t *self)
{
    size_t done = 0;
    while (done < self->n_writes && self->writes[done].caller.deadline_ms <= self->now_ms) {
        ds_pending_write_t *w = &self->writes[done++];
        ds_node_reply_error(self, &w->caller, DS_ENOQUORUM,
                            "not committed within %u ms: a majority of coordinators may be "
                            "unreachable; it may still commit, a retry is applied at most once",
                            DS_NODE_WRITE_TTL_MS);
        ds_node_caller_free(&w->caller);
    }
    s_writes_shift(self, done);
}

void ds_node_propose_expiry(ds_node_t *self)
{
    if (!s_is_leader(self))
        return;
    uint64_t now = ds_clock_wall_ms();
    ds_expire_t x = {now > DS_FSM_SESSION_TTL_MS ? now - DS_FSM_SESSION_TTL_MS : 0};
    ds_buf_t buf = {0};
    uint64_t index;
    if (ds_fsm_encode(DS_CMD_EXPIRE_SESSIONS, "", 0, now, &x, &buf, NULL) == 0 &&
        ds_raft_propose(ds_replica_raft(self->replica), buf.data, (uint32_t)buf.len, &index) == 0)
        DS_LOG(DS_LOG_DEBUG, S_MOD, "proposed session expiry", "index=%" PRIu64, index);
    ds_buf_free(&buf);
}

/* ---- reads ------------------------------------------------------------------- */

typedef struct {
    const char *key;
    ds_kv_reply_t *reply;
    ds_arena_t *arena; /* holds the decoded record after the transaction */
} s_kv_read_t;

static int s_kv_read(ds_txn_t *txn, void *ctx)
{
    s_kv_read_t *r = ctx;
    ds_val_t v;
    ds_kv_record_t rec;
    int rc = ds_state_get(txn, DS_TABLE_KV, r->key, &v);
    if (rc == DS_ENOTFOUND)
        return 0;
    if (rc == 0 && ds_codec_decode(&ds_kv_record_desc, v.data, v.len, &rec, r->arena, NULL) != 0)
        rc = ds_txn_fail(txn, DS_ECORRUPT, "kv record %s is unreadable", r->key);
    if (rc == 0) {
        r->reply->found = true;
        r->reply->value = rec.value;
        r->reply->version = rec.version;
        r->reply->mod_index = rec.mod_index;
    }
    return rc;
}

static void s_serve_kv_get(ds_node_t *self, ds_caller_t *caller, const ds_kv_get_t *get)
{
    ds_kv_reply_t reply = {get->key, false, {NULL, 0}, ds_replica_applied(self->replica), 0, 0};
    s_kv_read_t r = {get->key, &reply, ds_arena_new(2u * DS_MAX_KV_VALUE + 4096)};
    int rc = r.arena ? ds_store_read(ds_replica_store(self->replica), s_kv_read, &r) : DS_ENOMEM;
    if (rc != 0)
        ds_node_reply_error(self, caller, rc, "reading %s failed: %s", get->key,
                            ds_store_errmsg(ds_replica_store(self->replica)));
    else
        ds_node_reply(self, caller, DS_MSG_KV_REPLY, &reply);
    ds_arena_destroy(&r.arena);
}

static void s_serve_read(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    if (msg->env.type == DS_MSG_KV_GET)
        s_serve_kv_get(self, caller, msg->body);
    else if (msg->env.type == DS_MSG_TOKEN_LIST)
        ds_node_serve_tokens(self, caller, msg);
    else
        ds_node_serve_query(self, caller, msg);
}

static void s_on_kv_get(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg)
{
    const ds_kv_get_t *get = (*msg)->body;
    if (get->stale)
        s_serve_kv_get(self, caller, get);
    else
        ds_node_read_linearizable(self, caller, msg);
}

static void s_on_query(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg)
{
    const ds_query_req_t *q = (*msg)->body;
    if (q->stale)
        ds_node_serve_query(self, caller, *msg);
    else
        ds_node_read_linearizable(self, caller, msg);
}

void ds_node_read_linearizable(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg)
{
    if (!s_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    uint64_t id = ++self->next_read_id;
    uint8_t ctx[8];
    memcpy(ctx, &id, sizeof ctx);
    int rc = ds_node_grow((void **)&self->reads, &self->cap_reads, self->n_reads,
                          sizeof *self->reads, DS_NODE_MAX_READS);
    if (rc == 0)
        rc = ds_raft_read_index(ds_replica_raft(self->replica), ctx, sizeof ctx);
    if (rc != 0) {
        ds_node_reply_propose_error(self, caller, rc);
        return;
    }
    self->reads[self->n_reads++] = (ds_pending_read_t){s_keep(caller), id, 0, *msg};
    *msg = NULL; /* kept until served */
}

void ds_node_read_confirmed(ds_node_t *self, const ds_raft_read_state_t *rs)
{
    uint64_t id;
    if (rs->ctx.len != sizeof id)
        return;
    memcpy(&id, rs->ctx.data, sizeof id);
    for (size_t i = 0; i < self->n_reads; i++)
        if (self->reads[i].id == id)
            self->reads[i].index = rs->index;
}

static void s_read_remove(ds_node_t *self, size_t i)
{
    ds_node_caller_free(&self->reads[i].caller);
    ds_msg_destroy(&self->reads[i].req);
    self->reads[i] = self->reads[--self->n_reads];
}

void ds_node_reads_serve(ds_node_t *self)
{
    uint64_t applied = ds_replica_applied(self->replica);
    for (size_t i = 0; i < self->n_reads;) {
        ds_pending_read_t *r = &self->reads[i];
        if (r->index && applied >= r->index) {
            s_serve_read(self, &r->caller, r->req);
        } else if (r->caller.deadline_ms <= self->now_ms) {
            ds_node_reply_error(self, &r->caller, DS_ENOQUORUM,
                                "read not confirmed by a majority within %u ms: retry, or read "
                                "this member's view with --stale",
                                DS_NODE_WRITE_TTL_MS);
        } else {
            i++;
            continue;
        }
        s_read_remove(self, i);
    }
}

void ds_node_reads_fail_all(ds_node_t *self)
{
    while (self->n_reads) {
        ds_node_reply_not_leader(self, &self->reads[0].caller);
        s_read_remove(self, 0);
    }
}

/* ---- cluster ------------------------------------------------------------------ */

void ds_node_member_row(const ds_node_t *self, const ds_peer_t *p, const ds_raft_status_t *st,
                        ds_member_row_t *row)
{
    ds_raft_peer_status_t ps = {0};
    bool known = ds_raft_peer_status(ds_replica_raft(self->replica), p->id, &ps) == 0;
    row->id = p->id;
    row->peer_endpoint = (char *)p->peer;
    row->rpc_endpoint = (char *)p->rpc;
    row->role = p->id == st->lead ? "leader" : "follower";
    row->match_index = p->id == st->id ? st->last_index : ps.match;
    row->lag = row->match_index < st->last_index ? st->last_index - row->match_index : 0;
    row->reachable = p->id == st->id || (known && ps.recent_active);
    if (!ds_node_is_leader(self) && p->id != st->id) {
        /* Only the leader tracks replication: a follower reports no match
           index or lag, and a member it heard a hello from lately as up. */
        row->match_index = row->lag = 0;
        row->reachable = p->last_heard_ms && self->now_ms < p->last_heard_ms + 3 * DS_NODE_HELLO_MS;
    }
    if (!row->reachable && p->id != st->lead)
        row->role = "unreachable";
}

static void s_on_cluster_status(ds_node_t *self, ds_caller_t *caller, const ds_query_req_t *q)
{
    if (!q->stale && !s_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(self->replica), &st);
    ds_member_row_t rows[DS_MAX_MEMBERS];
    ds_cluster_status_reply_t reply = {
        st.lead, st.term, st.commit, ds_replica_applied(self->replica), 0, rows};
    for (uint32_t i = 0; i < self->n_peers; i++)
        ds_node_member_row(self, &self->peers[i], &st, &rows[reply.n_members++]);
    ds_node_reply(self, caller, DS_MSG_CLUSTER_STATUS_REPLY, &reply);
}

/*  The follower with the highest match index, 0 if none is reachable. */
static uint64_t s_best_follower(const ds_node_t *self)
{
    uint64_t best = 0, best_match = 0;
    for (uint32_t i = 0; i < self->n_peers; i++) {
        ds_raft_peer_status_t ps;
        uint64_t id = self->peers[i].id;
        if (id == self->cfg.id ||
            ds_raft_peer_status(ds_replica_raft(self->replica), id, &ps) != 0 || !ps.recent_active)
            continue;
        if (!best || ps.match > best_match)
            best = id, best_match = ps.match;
    }
    return best;
}

static void s_on_transfer(ds_node_t *self, ds_caller_t *caller, const ds_transfer_req_t *t)
{
    if (!s_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    if (self->transfer.rid) {
        ds_node_reply_error(self, caller, DS_ESTATE, "a leader transfer is already in progress");
        return;
    }
    uint64_t target = t->target ? t->target : s_best_follower(self);
    int rc =
        target ? ds_raft_transfer_leader(ds_replica_raft(self->replica), target) : DS_ENOQUORUM;
    if (rc != 0) {
        ds_node_reply_error(self, caller, rc, "cannot transfer leadership to %" PRIu64 ": %s",
                            target,
                            rc == DS_EINVAL ? "not another voting member (see dsctl cluster "
                                              "status)"
                                            : ds_strerror(rc));
        return;
    }
    self->transfer = s_keep(caller);
    self->transfer.deadline_ms = self->now_ms + 4u * self->cfg.election_ms;
    DS_LOG(DS_LOG_INFO, S_MOD, "transferring leadership", "to=%" PRIu64, target);
}

void ds_node_transfer_check(ds_node_t *self)
{
    if (!self->transfer.rid)
        return;
    if (!s_is_leader(self) && self->lead) {
        char text[128];
        snprintf(text, sizeof text, "leadership transferred to member %" PRIu64, self->lead);
        ds_op_reply_t reply = {"", 0, 0, "transferred", text, 0};
        ds_node_reply(self, &self->transfer, DS_MSG_OP_REPLY, &reply);
    } else if (self->transfer.deadline_ms <= self->now_ms) {
        ds_node_reply_error(self, &self->transfer, DS_ETIMEOUT,
                            "the target did not take over in time; this member still leads");
    } else {
        return;
    }
    ds_node_caller_free(&self->transfer);
}

/* ---- dispatch ------------------------------------------------------------------- */

void ds_node_rpc_dispatch(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg)
{
    const ds_msg_t *m = *msg;
    switch (m->env.type) {
    case DS_MSG_KV_PUT:
        s_on_kv_put(self, caller, m);
        return;
    case DS_MSG_KV_GET:
        s_on_kv_get(self, caller, msg); /* may keep *msg and set it to NULL */
        return;
    case DS_MSG_CLUSTER_STATUS:
        s_on_cluster_status(self, caller, m->body);
        return;
    case DS_MSG_CLUSTER_TRANSFER:
        s_on_transfer(self, caller, m->body);
        return;
    case DS_MSG_STATUS:
    case DS_MSG_HISTORY:
    case DS_MSG_WORKERS:
        s_on_query(self, caller, msg); /* may keep *msg and set it to NULL */
        return;
    case DS_MSG_EVENTS:
        ds_node_on_events(self, caller, m);
        return;
    case DS_MSG_TOP:
        ds_node_on_top(self, caller, m);
        return;
    case DS_MSG_DEPLOY:
    case DS_MSG_ROLLBACK:
    case DS_MSG_PROMOTE:
    case DS_MSG_PAUSE:
    case DS_MSG_RESUME:
    case DS_MSG_ABORT:
        ds_node_on_admin(self, caller, m);
        return;
    case DS_MSG_TOKEN_CREATE:
    case DS_MSG_TOKEN_REVOKE:
    case DS_MSG_TOKEN_LIST:
    case DS_MSG_WORKER_REMOVE:
        ds_node_on_tokens(self, caller, msg); /* may keep *msg and set it to NULL */
        return;
    case DS_MSG_JOIN:
        ds_node_on_join(self, caller, m);
        return;
    case DS_MSG_HEARTBEAT:
        ds_node_on_heartbeat(self, caller, m);
        return;
    case DS_MSG_ASSIGNMENT_REQ:
        ds_node_on_assignment_req(self, caller, m);
        return;
    default:
        DS_LOG(DS_LOG_WARN, S_MOD, "request type not served", "type=%s sender=%s",
               ds_msg_type_name(m->env.type), m->env.sender);
        ds_node_reply_error(self, caller, DS_EUNKNOWN,
                            "this coordinator does not serve %s requests (protocol %u)",
                            ds_msg_type_name(m->env.type), DS_PROTOCOL_VERSION);
    }
}
